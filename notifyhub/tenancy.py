"""What a credential reaches: its own tenant's clients, accounts and users, or every tenant's.

A tenant administrator administers only subscriptions of its tenant's clients; a producer
addresses only its tenant's accounts and their members; the device API registers only in
accounts the caller belongs to. A hub-operator grant (`Application.hub_operator`, an API key's
`any_account`) is explicit, given by the operator, and never a default.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reach:
    """The tenants a credential acts for: one (`tenant_id`), none (a credential of no tenant),
    or every one (`everywhere`, a hub-operator grant)."""

    tenant_id: str | None
    everywhere: bool = False

    def covers(self, tenant_id: str | None) -> bool:
        """Whether something of `tenant_id` (None: of no tenant) is within reach."""
        return self.everywhere or (tenant_id is not None and tenant_id == self.tenant_id)


# The hub's own code acting for itself (sweeps, operational events, the operator's console).
HUB = Reach(tenant_id=None, everywhere=True)
