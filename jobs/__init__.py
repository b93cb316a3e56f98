"""What the API and the workers share about a job: its message, its record, its keys."""
