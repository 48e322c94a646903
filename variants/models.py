"""The one table every variant serves: ``todos``, as an ORM class (its table is the Core table)."""

from datetime import datetime
from typing import cast

from sqlalchemy import BigInteger, CheckConstraint, DateTime, Identity, Table, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TITLE_MAX = 200


class Base(DeclarativeBase):
    pass


class Todo(Base):
    __tablename__ = "todos"
    __table_args__ = (
        CheckConstraint(f"char_length(title) BETWEEN 1 AND {TITLE_MAX}", name="todos_title_length"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    done: Mapped[bool] = mapped_column(server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


todos = cast(Table, Todo.__table__)
"""The Core ``Table`` behind ``Todo``, for the variants that bypass the ORM."""
