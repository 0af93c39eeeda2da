"""Platform models: tenants, OAuth applications with their allowed scopes, and accounts with
members."""

from typing import cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.deconstruct import deconstructible
from oauth2_provider.models import AbstractApplication

# `^[\p{L}0-9._-]+$`: letters of any script, ASCII digits, dot, underscore, hyphen. `\Z`, not
# `$`, which also matches before a final newline ("acme\n" passed). Python's `re` has no \p{L}:
# `[^\W\d_]` also takes numerals that are not letters ("²", "Ⅻ"), which IdentifierValidator drops.
IDENTIFIER_REGEX = r"^(?:[^\W\d_]|[0-9._-])+\Z"
IDENTIFIER_EXTRA = frozenset("0123456789._-")


@deconstructible
class IdentifierValidator(RegexValidator):
    r"""An identifier: only letters of any script (\p{L}), ASCII digits, '.', '_' and '-'."""

    regex = IDENTIFIER_REGEX
    message = "Use letters, digits, '.', '_' and '-' only."
    code = "invalid_identifier"

    def __call__(self, value: object) -> None:
        super().__call__(value)
        if not all(c.isalpha() or c in IDENTIFIER_EXTRA for c in str(value)):
            raise ValidationError(self.message, code=self.code, params={"value": value})


identifier_validator = IdentifierValidator()


# django-stubs cannot build the reverse manager `applications`: Application subclasses
# django-oauth-toolkit's untyped AbstractApplication.
class Tenant(models.Model):  # type: ignore[django-manager-missing]
    """One company the hub connects: its OAuth clients, accounts and producer keys belong to it,
    and its administrators and producers reach nothing outside it."""

    id = models.CharField(primary_key=True, max_length=64, validators=[identifier_validator])
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name or self.id


class Application(AbstractApplication):
    """An OAuth client, and the scopes a token issued to it may ever carry."""

    allowed_scopes = models.TextField(
        blank=True,
        default="",
        help_text="Space-separated scopes this application may be granted.",
    )
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="applications",
        help_text="The company this client belongs to. A client of no tenant reaches no "
        "tenant's subscriptions, accounts or users (unless it is a hub operator).",
    )
    hub_operator = models.BooleanField(
        default=False,
        help_text="Acts for every tenant: administers every subscription, registers devices in "
        "and addresses events to every account. Give it only to the operator's own clients.",
    )

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"

    def allowed_scope_list(self) -> list[str]:
        """The allowed scopes that the server also knows, in a stable order."""
        known = cast(dict[str, str], settings.OAUTH2_PROVIDER["SCOPES"])
        granted = set(self.allowed_scopes.split())
        return [scope for scope in known if scope in granted]


class Account(models.Model):
    """A customer account of a tenant that events, streams and devices belong to (the Device
    API's ACCOUNT_ID)."""

    id = models.CharField(primary_key=True, max_length=128, validators=[identifier_validator])
    name = models.CharField(max_length=200, blank=True)
    tenant = models.ForeignKey(
        Tenant,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="accounts",
        help_text="The company the account belongs to: only its producers may address it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name or self.id


class AccountMember(models.Model):
    """One principal (a user, or an OAuth application acting as itself) belonging to one account."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )
    application = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="account_member_is_user_xor_application",
                condition=(
                    models.Q(user__isnull=False, application__isnull=True)
                    | models.Q(user__isnull=True, application__isnull=False)
                ),
            ),
            models.UniqueConstraint(
                fields=["account", "user"],
                condition=models.Q(user__isnull=False),
                name="account_member_unique_user",
            ),
            models.UniqueConstraint(
                fields=["account", "application"],
                condition=models.Q(application__isnull=False),
                name="account_member_unique_application",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user or self.application} in {self.account_id}"
