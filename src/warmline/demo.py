"""The demo deployment's data: a chat widget any loopback page may embed, with SSO and context."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import jwt

from warmline.bot.loader import read_bot_folder
from warmline.bot.publishing import do_attach_bot, do_publish_bot
from warmline.channels.widget.model import ContextVariable, ContextVariableType, Widget, WidgetAuth
from warmline.channels.widget.registry import do_save_widget
from warmline.routing.config import do_apply_config
from warmline.routing.config_file import load_contact_center
from warmline.store import Database

DEMO_WIDGET_ID = "demo"
DEMO_SSO_SECRET = "warmline-demo-sso-signing-secret"
DEMO_SSO_ISSUER = "https://sso.demo.warmline.invalid"
DEMO_SSO_AUDIENCE = "warmline-demo"

DEMO_WIDGET = Widget(
    id=DEMO_WIDGET_ID,
    name="Contoso Retail chat (demo)",
    target_workstream="demo-messaging",
    allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    auth=WidgetAuth(
        algorithm="HS256",
        secret=DEMO_SSO_SECRET,
        issuer=DEMO_SSO_ISSUER,
        audience=DEMO_SSO_AUDIENCE,
    ),
    context_variables=[
        ContextVariable(name="CustomerTier", type=ContextVariableType.STRING),
        ContextVariable(name="CartValue", type=ContextVariableType.NUMBER),
        ContextVariable(name="IsReturningCustomer", type=ContextVariableType.BOOLEAN),
    ],
)


DEMO_BOT_ID = "contoso-retail"
DEMO_BOT_FOLDER = Path(__file__).with_name("demo_bot")
DEMO_CONTACT_CENTER = Path(__file__).with_name("demo_contact_center.yaml")


async def seed_demo(db: Database, directline_secret: str, now: datetime, *, with_bot: bool = False) -> None:
    """Create or refresh the demo data; safe to run at every demo start.

    ``with_bot`` publishes the retail demo bot, puts it behind the demo widget and applies the demo
    contact center (queues, workstreams, agents) its hand-offs route into; without it the widget's
    chats go to the built-in echo bot (what the Direct Line protocol tests expect).
    """
    async with db.transaction() as tx:
        await do_save_widget(tx, DEMO_WIDGET, directline_secret, now)
        if with_bot:
            await do_publish_bot(tx, DEMO_BOT_ID, read_bot_folder(DEMO_BOT_FOLDER), now)
            await do_attach_bot(tx, DEMO_WIDGET_ID, DEMO_BOT_ID)
            await do_apply_config(tx, load_contact_center(DEMO_CONTACT_CENTER).document, now)


def demo_sign_in_token(
    subject: str, name: str, now: datetime, lifetime: timedelta = timedelta(hours=1)
) -> str:
    """A host-page sign-in token the demo widget accepts (what a site's own login would issue)."""
    claims = {
        "sub": subject,
        "name": name,
        "iss": DEMO_SSO_ISSUER,
        "aud": DEMO_SSO_AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    return jwt.encode(claims, DEMO_SSO_SECRET, algorithm="HS256")
