"""User management from the shell, on the same database the app uses (DATABASE_URL / DATA_DIR).

    python -m engine.auth.users list
    python -m engine.auth.users add alice --role operator          # asks for the password
    python -m engine.auth.users set-password alice
    python -m engine.auth.users role alice admin
    python -m engine.auth.users disable alice | enable alice

Passwords are read from the terminal (or stdin when piped), never from the command line,
so they stay out of shell history. Changes end the user's sessions on the next request
of a running server only after it reloads its user list (restart), or at once through
the control page, which goes through the server.
"""
from __future__ import annotations

import argparse
import getpass
import sys
from datetime import datetime, timezone

from .accounts import ROLES, AccountError, Accounts, Audit
from ..core.config import Config
from ..storage.database import Database


def _read_password(confirm: bool = True) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Again: ") != first:
        raise AccountError("the two passwords differ")
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.auth.users", description="Manage Floorpulse users.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list users")
    p = sub.add_parser("add", help="add a user (password asked, or read from stdin)")
    p.add_argument("username")
    p.add_argument("--role", choices=ROLES, default="viewer")
    p = sub.add_parser("set-password", help="set a user's password")
    p.add_argument("username")
    p = sub.add_parser("role", help="change a user's role")
    p.add_argument("username")
    p.add_argument("role", choices=ROLES)
    for name in ("disable", "enable"):
        sub.add_parser(name, help=f"{name} a user").add_argument("username")
    args = parser.parse_args(argv)

    config = Config.from_env()
    db = Database(config.db_url)
    db.create_schema()
    accounts, audit = Accounts(db), Audit(db)
    accounts.load()
    try:
        if args.cmd == "list":
            print(f"{'user':<24} {'role':<9} {'state':<9} created")
            for u in accounts.list():
                created = datetime.fromtimestamp(u.created_at / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M")
                print(f"{u.username:<24} {u.role:<9} {'disabled' if u.disabled else 'active':<9} {created}")
            return 0
        if args.cmd == "add":
            user = accounts.add(args.username, _read_password(), args.role)
            detail = {"role": user.role, "via": "cli"}
            action = "user_add"
        elif args.cmd == "set-password":
            user = accounts.update(args.username, password=_read_password())
            detail, action = {"password": "changed", "via": "cli"}, "user_update"
        elif args.cmd == "role":
            user = accounts.update(args.username, role=args.role)
            detail, action = {"role": args.role, "via": "cli"}, "user_update"
        else:
            user = accounts.update(args.username, disabled=args.cmd == "disable")
            detail, action = {"disabled": args.cmd == "disable", "via": "cli"}, "user_update"
        audit.write("cli", action, user.username, detail)
        print(f"{action.replace('_', ' ')}: {user.username} ({user.role}{', disabled' if user.disabled else ''})")
        return 0
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        db.dispose()


if __name__ == "__main__":
    sys.exit(main())
