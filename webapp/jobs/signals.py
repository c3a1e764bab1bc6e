"""What the job machinery announces to the apps whose objects a job works on. A receiver runs inside the
transaction that ends the job, so the object's final state commits with it (registry/apps.py: a
validation that fails for good leaves its checkpoint rejected with the reason, never `validating`)."""

from django.dispatch import Signal

job_failed = Signal()  # sender=Job, job=<the failed Job>: no attempt is left (by a handler's error, the reaper, a timeout)
