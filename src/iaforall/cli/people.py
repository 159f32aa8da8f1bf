"""`iaforall users …` and `iaforall keys …`: accounts, straight on the database.

They work whether the server runs or not (SQLite in WAL mode takes both), so the first admin
can be made before the first start.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from iaforall.core.errors import IAForAllError
from iaforall.people.accounts import Accounts
from iaforall.settings import Settings
from iaforall.store.database import Database


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = commands.add_parser("users", help="accounts: create, list, change, delete")
    verbs = users.add_subparsers(dest="verb", metavar="VERB", required=True)
    admin = verbs.add_parser("create-admin", help="create an administrator")
    admin.add_argument("name")
    admin.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    member = verbs.add_parser("create", help="create a user")
    member.add_argument("name")
    member.add_argument("--role", choices=["member", "admin"], default="member")
    member.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    verbs.add_parser("list", help="list the users")
    passwd = verbs.add_parser("passwd", help="set a user's password (ends their sessions)")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    for verb, text in (("disable", "stop a user from signing in"), ("enable", "let them again")):
        verbs.add_parser(verb, help=text).add_argument("name")
    verbs.add_parser("delete", help="delete a user and their keys").add_argument("name")

    keys = commands.add_parser("keys", help="API keys: create, list, revoke")
    key_verbs = keys.add_subparsers(dest="verb", metavar="VERB", required=True)
    create = key_verbs.add_parser("create", help="create a key (shown once)")
    create.add_argument("--user", required=True, help="whose key")
    create.add_argument("--name", default="", help="a label, e.g. the tool that uses it")
    listing = key_verbs.add_parser("list", help="list keys (never the secrets)")
    listing.add_argument("--user", help="only this user's")
    key_verbs.add_parser("revoke", help="revoke a key by its id").add_argument("key_id")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise IAForAllError("The two passwords differ.")
    return first


def _reporting_errors(
    command: Callable[[Settings, argparse.Namespace, Console], None],
) -> Callable[[Settings, argparse.Namespace], int]:
    """A command whose domain errors are printed for the user (exit 1), not raised."""

    def run(settings: Settings, args: argparse.Namespace) -> int:
        console = Console()
        try:
            command(settings, args, console)
        except IAForAllError as exc:
            console.print(f"[red]{exc.message}[/red]")
            return 1
        return 0

    return run


def _accounts(settings: Settings) -> Accounts:
    database = Database(settings.database_url)
    database.upgrade()
    return Accounts(database, settings.people.session_hours)


@_reporting_errors
def run_users(settings: Settings, args: argparse.Namespace, console: Console) -> None:
    accounts = _accounts(settings)
    if args.verb in ("create-admin", "create"):
        role = "admin" if args.verb == "create-admin" else args.role
        user = accounts.create_user(args.name, _password(args.password_stdin), role)
        adopted = accounts.adopt_local_data(user.id) if role == "admin" else 0
        console.print(f"Created {user.role} [bold]{user.name}[/bold].")
        if adopted:
            console.print(f"The {adopted} conversation(s) of the local mode are now theirs.")
        if not settings.people.auth:
            console.print("Accounts are used once the server runs with IAFORALL_AUTH=true.")
    elif args.verb == "list":
        table = Table("name", "role", "status", "created")
        for u in accounts.list_users():
            status = "disabled" if u.disabled else "active"
            table.add_row(u.name, u.role, status, f"{u.created_at:%Y-%m-%d}")
        console.print(table)
    elif args.verb == "passwd":
        accounts.update_user(args.name, password=_password(args.password_stdin))
        console.print("Password changed; the user's web sessions were ended.")
    elif args.verb in ("disable", "enable"):
        accounts.update_user(args.name, disabled=args.verb == "disable")
        console.print(f"{args.name}: {args.verb}d.")
    elif args.verb == "delete":
        accounts.delete_user(args.name)
        console.print(f"Deleted {args.name}.")


@_reporting_errors
def run_keys(settings: Settings, args: argparse.Namespace, console: Console) -> None:
    accounts = _accounts(settings)
    if args.verb == "create":
        key, secret = accounts.create_key(args.user, args.name)
        console.print(f"Key {key.id} for {args.user}. Copy it now; it is not shown again:")
        print(secret)  # plain, so that scripts can capture it
    elif args.verb == "list":
        names = {u.id: u.name for u in accounts.list_users()}
        table = Table("id", "user", "name", "created", "last used", "status")
        for k in accounts.list_keys(args.user):
            last = "never" if k.last_used_at is None else f"{k.last_used_at:%Y-%m-%d %H:%M}"
            status = "revoked" if k.revoked_at else "active"
            table.add_row(
                k.id,
                names.get(k.user_id, "?"),
                k.name,
                f"{k.created_at:%Y-%m-%d}",
                last,
                status,
            )
        console.print(table)
    elif args.verb == "revoke":
        accounts.revoke_key(args.key_id)
        console.print(f"Key {args.key_id} revoked.")
