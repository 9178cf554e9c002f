"""A real SMTP listener for fenghuo's mail tests (Debian's python3-aiosmtpd).

Usage: /usr/bin/python3 smtp_sink.py DIR MODE [CERT KEY] [USER:PASS]
MODE is plain, starttls or tls (implicit TLS). Listens on 127.0.0.1 on a free port, prints
"READY <port>" and writes every message to DIR/<n>.eml with its envelope in DIR/<n>.env.
"""
import asyncio
import json
import os
import socket
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Sink:
    def __init__(self, directory):
        self.dir = directory
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.dir, "%03d" % self.n)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(base + ".env", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "tls": server.transport.get_extra_info("ssl_object") is not None,
                       "auth": getattr(session, "authenticated", False)}, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 OK"


def main():
    directory, mode = sys.argv[1], sys.argv[2]
    rest = sys.argv[3:]
    cert = key = None
    if mode in ("starttls", "tls"):
        cert, key = rest[0], rest[1]
        rest = rest[2:]
    creds = rest[0].split(":", 1) if rest else None
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    kwargs = {}
    if cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        if mode == "starttls":
            kwargs.update(tls_context=ctx, require_starttls=True)
        else:
            kwargs.update(ssl_context=ctx)
    if creds:
        def auth(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login.decode() == creds[0] and auth_data.password.decode() == creds[1]
            return AuthResult(success=ok)
        kwargs.update(authenticator=auth, auth_required=True, auth_require_tls=(mode != "plain"))
    ctrl = Controller(Sink(directory), hostname="127.0.0.1", port=port, **kwargs)
    ctrl.start()
    print("READY %d" % port, flush=True)
    try:
        while True:
            time.sleep(1)
            if os.getppid() == 1:
                break
    finally:
        ctrl.stop()


if __name__ == "__main__":
    main()
