"""Background jobs: work that runs in this process after the response has been sent."""
