"""Names for the few statements written by hand: quoted tables and columns from the models.

Hand-written SQL is kept to hot paths where the ORM cannot say the statement in one round trip
(an INSERT ... SELECT, an ON CONFLICT on a partial index). Its names come from `_meta`, so a
renamed table or column changes the SQL with the model instead of breaking it.
"""

from types import SimpleNamespace

from django.db import connection
from django.db.models import Model


def sql_names(model: type[Model]) -> SimpleNamespace:
    """`.table` is the model's quoted table; every concrete field's quoted column is the
    attribute named after the field (`names.subscription` is `"subscription_id"`)."""
    quote = connection.ops.quote_name
    names = SimpleNamespace(table=quote(model._meta.db_table))
    for field in model._meta.concrete_fields:
        setattr(names, field.name, quote(field.column or field.name))
    return names


def sql_constant(value: str) -> str:
    """A model constant (a `TextChoices` member) as an SQL string literal.

    Written into the statement rather than passed as a parameter where a partial index's
    condition names it: with server-side binding a prepared statement gets a generic plan,
    and PostgreSQL can only match `status = 'pending'` to an index `WHERE status = 'pending'`
    when the value is in the SQL.
    """
    return "'" + str(value).replace("'", "''") + "'"
