"""A real SMTP server (aiosmtpd) on a free loopback port, for invitation_mail.rs.

Prints {"port": N} once listening, then one JSON line per message it accepts:
{"from": ..., "to": [...], "data": "<the message>", "body": "<its text, decoded>"}. Exits when stdin closes.
"""
import asyncio
import email
import email.policy
import json
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    async def handle_DATA(self, server, session, envelope):
        print(
            json.dumps(
                {
                    "from": envelope.mail_from,
                    "to": envelope.rcpt_tos,
                    "data": envelope.content.decode("utf-8", "replace"),
                    # The text part, its transfer encoding undone.
                    "body": email.message_from_bytes(
                        envelope.content, policy=email.policy.default
                    ).get_content(),
                }
            ),
            flush=True,
        )
        return "250 OK"


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Sink()), host="127.0.0.1", port=0)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    # Until the test (our parent) closes our stdin.
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
