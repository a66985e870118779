"""The ids that tie log lines together: the HTTP request that enqueued a job is stored on
its row, and both ids are set while a worker runs the job."""

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
job_id_var: ContextVar[str | None] = ContextVar("job_id", default=None)
