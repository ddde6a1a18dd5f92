"""Console sign-in, sessions and CSRF, over plain HTTP (the browser test covers the pages)."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import Engine

from tests.conftest import count
from tests.support.harness import RunningEngine
from tests.support.ops import OPS_TOKEN, PASSWORD, People, add_dead_letter

LIVE = "SELECT count(*) FROM dead_letters WHERE requeued_at IS NULL"


def _sign_in(c: httpx.Client, **fields: str) -> httpx.Response:
    form = c.get("/ops/console/login")
    login_token = re.search(r'name="login_token" value="([^"]+)"', form.text)
    assert login_token is not None
    return c.post("/ops/console/login", data={"login_token": login_token[1], **fields})


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found[1]


def test_super_user_signs_in_others_are_refused(ops_engine: RunningEngine, people: People) -> None:
    with ops_engine.client() as c:
        assert c.get("/ops/console").headers["location"] == "/ops/console/login"
        refused = _sign_in(c, token="not-the-token-at-all-0123456789")
        assert refused.status_code == 401 and "not valid" in refused.text
        agent = _sign_in(c, email=people.agent_email, password=PASSWORD)
        assert agent.status_code == 401 and "Only super users" in agent.text
        wrong = _sign_in(c, email=people.super_email, password="wrong password")
        assert wrong.status_code == 401 and "Wrong e-mail or password" in wrong.text
        assert c.get("/ops/console").status_code == 303

        ok = _sign_in(c, email=people.super_email, password=PASSWORD)
        assert ok.status_code == 303 and ok.headers["location"] == "/ops/console"
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ops" in cookie
        assert c.get("/ops/console").status_code == 200


def test_forms_need_the_session_csrf_token_and_sign_out_ends_the_session(
    ops_engine: RunningEngine, clean_db: Engine
) -> None:
    add_dead_letter(clean_db)
    with ops_engine.client() as c:
        assert _sign_in(c, token=OPS_TOKEN).status_code == 303
        page = c.get("/ops/console/dead-letters")
        forged = c.post(
            "/ops/console/dead-letters/bulk", data={"action": "purge", "all": "yes", "csrf": "x"}
        )
        assert forged.status_code == 403
        unfiltered = c.post(
            "/ops/console/dead-letters/bulk", data={"action": "purge", "csrf": _csrf(page.text)}
        )
        assert unfiltered.status_code == 400 and "all:" in unfiltered.text
        assert count(clean_db, LIVE) == 1

        bad_filter = c.get("/ops/console/dead-letters", params={"tenant_id": "abc"})
        assert bad_filter.status_code == 400 and "tenant_id" in bad_filter.text

        purged = c.post(
            "/ops/console/dead-letters/bulk",
            data={"action": "purge", "all": "yes", "csrf": _csrf(page.text)},
        )
        assert purged.status_code == 303 and "notice=purged" in purged.headers["location"]
        assert count(clean_db, LIVE) == 0

        out = c.post("/ops/console/logout", data={"csrf": _csrf(page.text)})
        assert out.status_code == 303
        assert c.get("/ops/console").headers["location"] == "/ops/console/login"


def test_page_text_is_escaped(ops_engine: RunningEngine, clean_db: Engine) -> None:
    add_dead_letter(clean_db, error_class="<script>alert(1)</script>")
    with ops_engine.client() as c:
        _sign_in(c, token=OPS_TOKEN)
        page = c.get("/ops/console/dead-letters").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_cursor_that_is_not_an_id_shows_the_first_page(
    ops_engine: RunningEngine, clean_db: Engine
) -> None:
    add_dead_letter(clean_db, error_class="FirstPageError")
    with ops_engine.client() as c:
        _sign_in(c, token=OPS_TOKEN)
        pages = [
            c.get("/ops/console/dead-letters", params={"cursor": cursor})
            for cursor in ("²", "9" * 40, "-3", "abc")
        ]
    for page in pages:
        assert page.status_code == 200, page.text
        assert "FirstPageError" in page.text
