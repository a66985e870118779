"""An existing FastAPI app with a model of its own, made durable with one task.

API: `uvicorn shop:app`. Worker: `celery -A shop.celery_app worker`. Both read
DATABASE_URL, BROKER_URL and the engine's other settings from the environment.
"""

import os
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException
from sqlalchemy import String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from durable_jobs import JobsSettings, LedgerBase, create_celery, jobs_router, task

settings = JobsSettings()
engine = create_engine(settings.database_url)
Sessions = sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "example_orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    item: Mapped[str] = mapped_column(String(100))
    confirmed: Mapped[bool] = mapped_column(default=False)


@task("orders.confirm", retry_for=(ConnectionError,), retries=3, backoff=2)
def confirm_order(order_id: int) -> None:
    with Sessions.begin() as session:
        order = session.get(Order, order_id, with_for_update=True)
        if order is not None:  # gone, or confirmed twice: both harmless
            order.confirmed = True


celery_app = create_celery(settings, engine=engine)


def get_session() -> Iterator[Session]:
    with Sessions.begin() as session:
        yield session


def admin_only(authorization: Annotated[str, Header()] = "") -> None:
    if authorization != f"Bearer {os.environ['ADMIN_TOKEN']}":
        raise HTTPException(403, "Not an admin")


app = FastAPI()
app.include_router(jobs_router(session=get_session, dependencies=[Depends(admin_only)]))


@app.post("/orders", status_code=201)
def place_order(
    item: str, session: Annotated[Session, Depends(get_session, scope="function")]
) -> dict[str, str]:
    order = Order(item=item)
    session.add(order)
    session.flush()
    job = confirm_order.enqueue(session, order_id=order.id)  # sent once this commits
    return {"order_id": str(order.id), "job_id": str(job.id)}


# For the example only; a real app runs migrations (see docs/engine.md).
Base.metadata.create_all(engine)
LedgerBase.metadata.create_all(engine)
