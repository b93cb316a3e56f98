"""Failures a backend reports with a message a person can act on."""


class JobError(Exception):
    """The job cannot be done; the message says why and what to do."""


class CapacityError(JobError):
    """The mode's model does not fit in the memory this worker has free."""
