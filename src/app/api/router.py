from fastapi import APIRouter

from app.api.routes import health, job_status, jobs, ledger_page, metrics, users

api_v1 = APIRouter(prefix="/api/v1")
api_v1.include_router(health.router)
api_v1.include_router(users.router)
api_v1.include_router(jobs.router)
api_v1.include_router(job_status.router)

# /metrics sits at the root, where Prometheus looks by default; the ledger page, a
# page for people rather than an API, under /admin.
api_router = APIRouter()
api_router.include_router(api_v1)
api_router.include_router(metrics.router)
api_router.include_router(ledger_page.router)
