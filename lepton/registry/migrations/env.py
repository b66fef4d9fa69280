"""Alembic environment: always run with a connection handed in by
lepton.registry.engine (programmatic upgrade), or with sqlalchemy.url."""

from alembic import context
from sqlalchemy import create_engine

from lepton.registry.schema import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is not None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:  # `alembic -c ... upgrade head` from a shell
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
