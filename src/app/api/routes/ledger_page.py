"""The engine's ledger page: like the jobs API, it answers 404 while ADMIN_TOKEN is unset.

The files hold no ledger data, so they need no token; the data comes only from the JSON
API, which checks it.
"""

from fastapi import Depends

from app.api.deps import configured_admin_token
from durable_jobs import ledger_page_router

router = ledger_page_router(dependencies=[Depends(configured_admin_token)])
