"""`python -m tests.faults.seed`: migrate the fault suite's database and create its community and staff.

Prints one JSON line: the community and the two staff accounts (a home visit needs two people).
Run in a child process with DATABASE_URL set: this pytest process may hold another database.
"""

from __future__ import annotations

import asyncio
import json

from backend import db
from backend.audit.service import ensure_head
from backend.auth import service as auth_service
from backend.auth.models import Role
from backend.residents import service as residents
from backend.settings import Settings

PASSWORD = "Faults-password-2026"


async def main() -> dict:
    settings = Settings.from_env()
    await db.init(settings, run_migrations=True)
    try:
        await ensure_head()
        community = await residents.ensure_community(code="FAULTS", name="故障演练社区", district="测试区")
        people = {}
        for name, role in (("visitor", Role.COMMUNITY_STAFF), ("attester", Role.COMMUNITY_ADMIN)):
            await auth_service.create_staff(username=f"faults_{name}", password=PASSWORD, display_name=name,
                                            role=role, community_id=community.id)
            people[name] = f"faults_{name}"
        return {"community_id": community.id, "password": PASSWORD, **people}
    finally:
        await db.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
