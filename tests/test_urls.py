"""Credentials in URLs: what is shown (``redacted``), what links resolve against (``link_base``)."""

from __future__ import annotations

import pytest

from ingest.urls import link_base, redact_text, redacted, secret_name

REDACTED = {
    "user and password": ("http://user:s3cret@host/feed", "http://user:***@host/feed"),
    "a user name alone is a token": ("https://ghp_t0k3n@host/feed", "https://***@host/feed"),
    "empty password": ("http://user:@host/", "http://user:***@host/"),
    "an @ inside the password": ("http://u:p@ss@host/f", "http://u:***@host/f"),
    "percent-encoded password": ("http://u:p%40ss@host/", "http://u:***@host/"),
    "backslash before the @": ("http://u:1234\\@host/", "http://u:***@host/"),
    "token in the query": ("http://h/f?token=t0p&page=2", "http://h/f?token=***&page=2"),
    "names are case-insensitive": (
        "http://h/f?API_KEY=k&Signature=s",
        "http://h/f?API_KEY=***&Signature=***",
    ),
    "camel case and dashes": (
        "http://h/?apiKey=k&X-Amz-Security-Token=t",
        "http://h/?apiKey=***&X-Amz-Security-Token=***",
    ),
    "password, pass, auth, sig, secret": (
        "http://h/?password=a&pass=b&auth=c&sig=d&client_secret=e",
        "http://h/?password=***&pass=***&auth=***&sig=***&client_secret=***",
    ),
    "a token with base64 padding": ("http://h/?token=YWJj==", "http://h/?token=***"),
    "a URL in a parameter": ("http://h/?next=http://x/?key=k", "http://h/?next=http://x/?key=***"),
    "semicolon separators": ("http://h/?a=1;key=k", "http://h/?a=1;key=***"),
    "token in the fragment": ("http://h/#access_token=t", "http://h/#access_token=***"),
    "both at once": ("http://u:p@h:8080/f?token=t#x", "http://u:***@h:8080/f?token=***#x"),
    "database URL": (
        "postgresql+psycopg://u:s3cret@db:5432/x",
        "postgresql+psycopg://u:***@db:5432/x",
    ),
    "password as a query parameter": (
        "postgresql://db/x?password=s",
        "postgresql://db/x?password=***",
    ),
}

UNCHANGED = {
    "plain URL": "https://example.org/feed.xml?page=2",
    "an @ in the path": "https://medium.com/@someone/feed",
    "an @ in the query": "https://h/search?q=a@b",
    "words that only contain a secret word": "http://h/?monkey=1&keyword=2&passage=3&token_count",
    "a name without a value": "http://h/?token",
    "local path": "/home/me/feeds/a.xml",
    "sqlite URL": "sqlite:////data/ingest.db",
    "empty": "",
    "garbage": "::::@@@???&&&===",
}


@pytest.mark.parametrize(("url", "shown"), REDACTED.values(), ids=REDACTED.keys())
def test_secrets_are_replaced_and_the_rest_of_the_url_kept(url: str, shown: str) -> None:
    assert redacted(url) == shown
    assert redacted(shown) == shown


@pytest.mark.parametrize("url", UNCHANGED.values(), ids=UNCHANGED.keys())
def test_a_url_without_secrets_is_shown_as_it_is(url: str) -> None:
    assert redacted(url) == url


@pytest.mark.parametrize(
    "garbage", ["http://", "://@", "http://@", "a://b:c@", "?=&=#", "http://[::1", "\x00://\x00@"]
)
def test_redacting_never_raises(garbage: str) -> None:
    assert isinstance(redacted(garbage), str)
    assert isinstance(redact_text(garbage), str)


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("token", True),
        ("TOKEN", True),
        ("access_token", True),
        ("apikey", True),
        ("api-key", True),
        ("APIKey", True),
        ("X-Amz-Signature", True),
        ("sessionid", True),
        ("page", False),
        ("keyword", False),
        ("tokens_left", False),
        ("", False),
    ],
)
def test_secret_names_are_read_word_by_word(name: str, secret: bool) -> None:
    assert secret_name(name) is secret


def test_every_url_in_a_text_is_redacted() -> None:
    text = (
        "cannot fetch 'http://u:s3cret@h/f?token=t0p': redirected to "
        "https://other.example/x?key=k3y (see https://example.org/help)"
    )
    assert redact_text(text) == (
        "cannot fetch 'http://u:***@h/f?token=***': redirected to "
        "https://other.example/x?key=*** (see https://example.org/help)"
    )


def test_a_text_without_secrets_is_returned_as_it_is() -> None:
    text = "HTTP 404 Not Found: check the URL http://h/feed?page=2"
    assert redact_text(text) is text


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://user:s3cret@h/feed?token=t0p&cat=3", "http://h/feed"),
        ("http://user:s3cret@h/feed", "http://h/feed"),
        ("https://h/feed?page=2", "https://h/feed?page=2"),
        ("", ""),
    ],
)
def test_links_resolve_against_the_url_without_its_credentials(url: str, base: str) -> None:
    assert link_base(url) == base
