"""Rate budgets shared by replicas: one token bucket row per tool credential, taken from by every replica.

The tools count requests per credential, whichever process sends them, so N replicas pacing themselves each to the
whole budget would send up to N times too much. On PostgreSQL every replica therefore takes its requests from one
row per credential, in one statement (``UPDATE ... RETURNING``): the bucket is refilled for the time since its
``stamp`` at ``rate``, capped at ``capacity``, and ``cost`` taken; a negative answer is how long the caller waits
for its turn (reservations queue up in order across replicas). The clock is the database's, so hosts need not agree.

Why a bucket row rather than 1/N of the budget per replica: the row is exact while replicas come and go (no
moment where the old replicas still spend 1/(N-1) each and the new one 1/N), and a replica with nothing to do takes
nothing, so the working ones get the whole budget. It costs one short statement per request (well under a
millisecond of the database's time; the tools allow at most a few dozen requests a second).

A bucket lets through ``capacity + rate * window`` in any window; the caller sizes both so that this is the
budget (``connectors.pacing.SharedBudget``).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

_CREATE = text(
    "INSERT INTO rate_budgets (key, tokens, stamp) VALUES (:key, :capacity, clock_timestamp()) "
    "ON CONFLICT (key) DO NOTHING"
)
_TAKE = text(
    "UPDATE rate_budgets AS b SET "
    "tokens = LEAST(:capacity, b.tokens + GREATEST(0, EXTRACT(EPOCH FROM (c.at - b.stamp))) * :rate) - :cost, "
    "stamp = GREATEST(b.stamp, c.at) "
    "FROM (SELECT clock_timestamp() AS at) AS c WHERE b.key = :key RETURNING b.tokens"
)


def take(connection: Connection, key: str, *, capacity: float, rate: float, cost: int) -> float:
    """Take ``cost`` tokens of the credential's bucket; the seconds the caller must wait first (0: at once)."""
    values = {"key": key, "capacity": capacity, "rate": rate, "cost": cost}
    left = connection.execute(_TAKE, values).scalar_one_or_none()
    if left is None:  # the first request with this credential: the bucket starts full
        connection.execute(_CREATE, values)
        left = connection.execute(_TAKE, values).scalar_one()
    return 0.0 if left >= 0 else -float(left) / rate
