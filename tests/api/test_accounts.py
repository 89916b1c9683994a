"""Accounts in the browser: sign up, sign in and out, password reset by link, API keys, rate limits."""

from __future__ import annotations

import itertools
import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from neutralize.access.models import OutboxMessage
from neutralize.core.db import make_session_factory, unit_of_work
from tests.api.factories import form_token

_people = itertools.count(1)


def browser(client: TestClient) -> TestClient:
    """A browser of its own (its own cookies) on the same app."""
    return TestClient(client.app, base_url="http://testserver")


def sign_up(web: TestClient, password: str = "correct horse battery") -> str:
    email = f"guest{next(_people)}@example.org"  # factories.signed_in makes person{n}@: one database
    body = {
        "email": email,
        "password": password,
        "display_name": "Wang Fang",
        "csrf_token": form_token(web, "/signup"),
    }
    response = web.post("/signup", data=body, follow_redirects=False)
    assert response.status_code == 303, response.text
    return email


def test_a_person_signs_up_makes_an_api_key_and_revokes_it(client: TestClient) -> None:
    web = browser(client)
    email = sign_up(web)
    session_cookie = web.cookies.get("nz_session")
    assert session_cookie
    account = web.get("/account")
    assert account.status_code == 200 and email in account.text and 'id="role">member' in account.text
    made = web.post("/account/keys", data={"label": "my app", "csrf_token": form_token(web, "/account")})
    token = re.search(r'id="new-token">([^<]+)<', made.text)
    assert token, made.text
    # the key acts as the person on the API, and only until it is revoked
    headers = {"Authorization": f"Bearer {token.group(1)}"}
    assert client.get("/api/v1/market/settlements", headers=headers).status_code == 403  # a member, known
    key_id = re.search(r"<code>(k_[0-9a-f]+)</code>", made.text)
    assert key_id
    revoked = web.post(
        f"/account/keys/{key_id.group(1)}/revoke", data={"csrf_token": form_token(web, "/account")}
    )
    assert revoked.status_code == 200 and "revoked" in revoked.text
    assert client.get("/api/v1/market/settlements", headers=headers).status_code == 401
    # nobody else revokes it, and nobody else sees it
    stranger = browser(client)
    sign_up(stranger)
    assert key_id.group(1) not in stranger.get("/account").text


def test_wrong_passwords_are_refused_and_then_rate_limited(client: TestClient) -> None:
    web = browser(client)
    email = sign_up(web, password="a long enough password")
    web.post("/logout", data={"csrf_token": form_token(web, "/account")})
    assert web.get("/account", follow_redirects=False).status_code == 303
    csrf = form_token(web, "/login")
    codes = [
        web.post("/login", data={"email": email, "password": f"wrong {n}", "csrf_token": csrf}).status_code
        for n in range(11)
    ]
    assert codes[:10] == [401] * 10 and codes[10] == 429
    limited = web.post(
        "/login", data={"email": email, "password": "a long enough password", "csrf_token": csrf}
    )
    assert limited.status_code == 429 and 'data-code="rate_limited"' in limited.text


def test_a_password_is_reset_by_the_link_in_the_outbox_once(client: TestClient) -> None:
    web = browser(client)
    email = sign_up(web, password="the first password")
    old_session = browser(client)
    old_session.cookies.set("nz_session", web.cookies.get("nz_session") or "")
    asked = web.post(
        "/password-reset", data={"email": email, "csrf_token": form_token(web, "/password-reset")}
    )
    assert asked.status_code == 200 and 'id="sent"' in asked.text
    unknown = web.post(
        "/password-reset",
        data={"email": "nobody@example.org", "csrf_token": form_token(web, "/password-reset")},
    )
    assert unknown.text.count('id="sent"') == 1  # the same answer: no way to probe for accounts
    factory = make_session_factory(client.app.state.engine)  # type: ignore[attr-defined]
    with unit_of_work(factory) as session:
        message = session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == email)).one()
        link = re.search(r"https?://\S+/password-reset/(\S+)", message.body)
    assert link
    path = f"/password-reset/{link.group(1)}"
    weak = web.post(path, data={"password": "short", "csrf_token": form_token(web, path)})
    assert weak.status_code == 422 and 'data-code="weak_password"' in weak.text
    done = web.post(
        path,
        data={"password": "the second password", "csrf_token": form_token(web, path)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    # every earlier session ended, and the link does not work twice
    assert old_session.get("/account", follow_redirects=False).status_code == 303
    again = web.post(path, data={"password": "the third password!", "csrf_token": form_token(web, path)})
    assert again.status_code == 422 and 'data-code="token_invalid"' in again.text
    csrf = form_token(web, "/login")
    assert (
        web.post(
            "/login", data={"email": email, "password": "the first password", "csrf_token": csrf}
        ).status_code
        == 401
    )
    new = web.post(
        "/login",
        data={"email": email, "password": "the second password", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert new.status_code == 303


def test_sign_up_refuses_weak_passwords_and_taken_addresses(client: TestClient) -> None:
    web = browser(client)
    email = sign_up(web)
    other = browser(client)
    csrf = form_token(other, "/signup")
    taken = other.post(
        "/signup",
        data={
            "email": email.upper(),
            "password": "another good one",
            "display_name": "X",
            "csrf_token": csrf,
        },
    )
    assert taken.status_code == 422 and 'data-code="duplicate"' in taken.text
    weak = other.post(
        "/signup",
        data={
            "email": "new@example.org",
            "password": "new@example.org",
            "display_name": "X",
            "csrf_token": csrf,
        },
    )
    assert weak.status_code == 422 and 'data-code="weak_password"' in weak.text


def test_the_session_cookie_is_http_only_and_same_site(client: TestClient) -> None:
    web = browser(client)
    email = f"cookie{next(_people)}@example.org"
    body = {
        "email": email,
        "password": "a fine password",
        "display_name": "Li",
        "csrf_token": form_token(web, "/signup"),
    }
    response = web.post("/signup", data=body, follow_redirects=False)
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("nz_session="))
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
