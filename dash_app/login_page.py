"""The `/login` page: plain HTML (no Dash, no script), so that it works before any
session exists. Two forms: a user name and password, or an API key."""

from __future__ import annotations

from html import escape

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Triptych</title>
<link rel="stylesheet" href="/assets/00-bootstrap-litera.min.css">
<link rel="stylesheet" href="/assets/style.css">
</head>
<body class="bg-light">
<nav class="navbar navbar-dark bg-dark mb-4"><div class="container-fluid">
<span class="navbar-brand d-flex align-items-center gap-2"><span class="brand-mark">▮▮▮</span>
<span class="brand-name">Triptych</span></span></div></nav>
<main class="container" style="max-width: 28rem">
<h1 class="h3 mb-1">Sign in</h1>
<p class="text-muted small">Three models, one stream. Your role decides what you may change:
viewers read, labellers also label and upload, admins also retrain and promote.</p>
{error}
<form method="post" action="/login" class="card card-body mb-3" id="login-password">
<input type="hidden" name="form_token" value="{token}">
<input type="hidden" name="next" value="{next}">
<label class="form-label" for="username">User name</label>
<input class="form-control mb-2" id="username" name="username" autocomplete="username" required autofocus>
<label class="form-label" for="password">Password</label>
<input class="form-control mb-3" id="password" name="password" type="password" autocomplete="current-password"
 required>
<button class="btn btn-primary" type="submit">Sign in</button>
</form>
<form method="post" action="/login" class="card card-body" id="login-key">
<input type="hidden" name="form_token" value="{token}">
<input type="hidden" name="next" value="{next}">
<label class="form-label" for="key">Or an API key</label>
<input class="form-control mb-3" id="key" name="key" type="password" autocomplete="off" placeholder="tpk_…" required>
<button class="btn btn-outline-primary" type="submit">Sign in with the key</button>
</form>
<p class="text-muted small mt-3">No account? An admin makes one with
<code>triptych users add NAME --role viewer</code>. On your own machine,
<code>triptych users link</code> prints a one-time sign-in link.</p>
</main>
</body>
</html>
"""


def login_page(error: str | None, next_path: str, form_token: str) -> str:
    alert = f'<div class="alert alert-danger py-2" role="alert" id="login-error">{escape(error)}</div>' if error else ""
    return _PAGE.format(error=alert, token=escape(form_token), next=escape(next_path))
