"""The browser app as served: the page and every file it loads, same-origin, with their content types
and a strict Content-Security-Policy; nothing loaded from elsewhere; off with ``web_app``; what
``/app/config.json`` tells the page; and the mint the page makes from its own origin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources

import pytest
from starlette.testclient import TestClient

from openrealtime.cli import build_parser
from openrealtime.engines.fake import EnergyVad, FakeTranscriber, ToneSynthesizer, UppercaseTranslator
from openrealtime.runtime.engines import EngineSet
from openrealtime.server.app import create_app
from openrealtime.server.settings import Settings
from openrealtime.server.web_app import CONTENT_TYPES, target_languages

KEY = "sk-web-app-test"
WEB = resources.files("openrealtime") / "web"
ORIGIN = "http://testserver"  # TestClient's Host: the page's own origin
# An XML namespace is a name, never fetched: the only URL an asset may carry.
NAMESPACES = {"http://www.w3.org/2000/svg"}


@pytest.fixture
def client(fake_engines: EngineSet) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), engines=fake_engines)) as client:
        yield client


def referenced(text: str) -> set[str]:
    """The same-origin paths a page or module loads: src/href, imports, worklet modules."""
    paths = set(re.findall(r'(?:src|href)="(/[^"]*)"', text))
    paths |= {"/app/" + name for name in re.findall(r'from "\./([^"]+)"', text)}
    paths |= set(re.findall(r'addModule\("(/[^"]+)"\)', text))
    return paths


def test_the_page_is_served_at_the_root_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = dict(part.split(" ", 1) for part in page.headers["content-security-policy"].split("; "))
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<title>openrealtime</title>" in page.text
    assert client.head("/").status_code == 200


def test_every_file_the_page_loads_is_served_with_its_content_type(client: TestClient) -> None:
    wanted = referenced(client.get("/").text)
    loaded: set[str] = set()
    while wanted - loaded:
        path = sorted(wanted - loaded)[0]
        loaded.add(path)
        reply = client.get(path)
        assert reply.status_code == 200, path
        name = path.removeprefix("/app/")
        assert reply.headers["content-type"] == CONTENT_TYPES[name]
        assert reply.headers["x-content-type-options"] == "nosniff"
        if name.endswith((".js", ".html")):
            wanted |= referenced(reply.text)
    assert {path.removeprefix("/app/") for path in loaded} == set(CONTENT_TYPES) - {"index.html"}
    assert client.get("/app/app.js").headers["content-type"] == "text/javascript; charset=utf-8"
    assert client.get("/app/style.css").headers["content-type"] == "text/css; charset=utf-8"


def test_the_package_data_holds_exactly_the_served_files() -> None:
    shipped = {entry.name for entry in WEB.iterdir() if entry.is_file()}
    assert shipped == set(CONTENT_TYPES)


def test_no_asset_loads_anything_from_elsewhere() -> None:
    for name in CONTENT_TYPES:
        text = (WEB / name).read_text()
        urls = set(re.findall(r"https?://[^\s\"'<>)]+", text)) - NAMESPACES
        assert not urls, f"{name} names {urls}"
        assert not re.search(r"[\"'(]//[\w.-]+", text), f"{name} has a protocol-relative URL"
        assert "@import" not in text
        assert "<style" not in text, f"{name}: inline styles break the policy"
        assert " style=" not in text, f"{name}: inline styles break the policy"
        if name.endswith(".html"):  # scripts from files only: the policy allows no inline script
            assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", text) == []
            assert not re.search(r"\son[a-z]+=", text)


def test_unknown_files_are_not_found(client: TestClient) -> None:
    assert client.get("/app/nothing.js").status_code == 404
    assert client.get("/app/../server/app.py").status_code == 404
    assert client.get("/app/").status_code == 404


def test_the_setting_turns_the_page_off(fake_engines: EngineSet) -> None:
    with TestClient(create_app(Settings(web_app=False), engines=fake_engines)) as client:
        for path in ("/", "/app/app.js", "/app/config.json"):
            assert client.get(path).status_code == 404, path
        assert client.get("/healthz").status_code == 200


def test_the_flag_and_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = build_parser()
    assert parser.parse_args(["serve", "--no-web-app"]).web_app is False
    assert parser.parse_args(["serve"]).web_app is None  # the setting's default or variable decides
    assert Settings.load().web_app is True
    monkeypatch.setenv("OPENREALTIME_WEB_APP", "off")
    assert Settings.load().web_app is False
    monkeypatch.setenv("OPENREALTIME_WEB_APP", "1")
    assert Settings.load().web_app is True
    monkeypatch.setenv("OPENREALTIME_WEB_APP", "maybe")
    with pytest.raises(ValueError, match="yes/no"):
        Settings.load()


def test_the_config_says_whether_a_key_is_needed(fake_engines: EngineSet) -> None:
    with TestClient(create_app(Settings(), engines=fake_engines)) as client:
        config = client.get("/app/config.json")
        assert config.status_code == 200
        assert config.headers["content-security-policy"]
        assert config.json()["key_required"] is False
    with TestClient(create_app(Settings(api_key=KEY), engines=fake_engines)) as client:
        assert client.get("/app/config.json").json()["key_required"] is True


def test_the_target_languages_are_those_served_and_spoken() -> None:
    speakers = {"*": ToneSynthesizer({"es", "fr"})}
    engines = EngineSet(
        EnergyVad(), FakeTranscriber(), "fake", synthesizers=speakers, translators=[UppercaseTranslator()]
    )
    untranslated = EngineSet(EnergyVad(), FakeTranscriber(), "fake", synthesizers=speakers)
    try:
        languages = target_languages(engines)
        assert target_languages(untranslated) == []
    finally:
        engines.close()
        untranslated.close()
    assert languages == [{"code": "fr", "name": "French"}, {"code": "es", "name": "Spanish"}]  # by name


def test_the_page_mints_from_its_own_origin_on_a_keyless_server(client: TestClient) -> None:
    minted = client.post(
        "/v1/realtime/client_secrets", json={"session": {"type": "transcription"}}, headers={"Origin": ORIGIN}
    )
    assert minted.status_code == 200
    assert minted.json()["value"].startswith("ek_")
    foreign = client.post("/v1/realtime/client_secrets", json={}, headers={"Origin": "https://elsewhere.example"})
    assert foreign.status_code == 403


def test_with_a_key_the_page_must_be_given_it(fake_engines: EngineSet) -> None:
    with TestClient(create_app(Settings(api_key=KEY), engines=fake_engines)) as client:
        headers = {"Origin": ORIGIN}
        assert client.post("/v1/realtime/client_secrets", json={}, headers=headers).status_code == 401
        headers["Authorization"] = f"Bearer {KEY}"
        assert client.post("/v1/realtime/client_secrets", json={}, headers=headers).status_code == 200
        assert KEY not in client.get("/").text + client.get("/app/app.js").text + client.get("/app/config.json").text
