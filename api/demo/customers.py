"""Simulated customers: names, Brazilian and US numbers, and what they say in each shape."""

from __future__ import annotations

import random
from dataclasses import dataclass

from api.demo.whatsapp import Part, error, media_id, media_sha256

# Every message shape a customer sends once, spread over the customers after their opener.
SHAPES = (
    "image",
    "audio",
    "voice note",
    "video",
    "document",
    "sticker",
    "location",
    "contacts card",
    "button reply",
    "list reply",
    "template button",
    "click-to-ad referral",
    "unsupported",
)

_BR_NAMES = ("Ana Lima", "Bruno Costa", "Carla Dias", "Rafael Souza", "Juliana Pereira",
             "Thiago Oliveira", "Mariana Ferreira", "Lucas Almeida")  # fmt: skip
_US_NAMES = ("Emily Carter", "Jason Reed", "Megan Brooks", "Tyler Hughes", "Rachel Foster")
_BR_AREAS = ("11", "21", "31", "41", "51", "61", "71", "81")
_US_AREAS = ("212", "415", "305", "617", "312", "512")
_OPENERS = {
    "pt": ("Olá! Meu pedido #{n} ainda não chegou.", "Bom dia, o produto do pedido #{n} veio "
           "com defeito.", "Oi! Qual o prazo de entrega do pedido #{n}?"),
    "en": ("Hi! My order #{n} hasn't arrived yet.", "Hello, I need to return an item from "
           "order #{n}.", "Hey, can I change the delivery address of order #{n}?"),
}  # fmt: skip
_THANKS = {"pt": "Obrigado pela ajuda!", "en": "Thanks for your help!"}
_LOCATIONS = {
    "pt": {"name": "MASP", "address": "Av. Paulista, 1578 - São Paulo - SP",
           "latitude": -23.561414, "longitude": -46.655881},
    "en": {"name": "Ferry Building", "address": "1 Ferry Building, San Francisco, CA",
           "latitude": 37.7955, "longitude": -122.3937},
}  # fmt: skip


@dataclass(frozen=True)
class Customer:
    name: str
    wa_id: str
    lang: str  # "pt" or "en"
    old_wa_id: str | None = None  # Brazil's pre-2016 mobile form, without the ninth digit


@dataclass(frozen=True)
class Said:
    """One message a customer sends: its WhatsApp type and that type's block."""

    kind: str
    block: object | None
    referral: Part | None = None
    errors: tuple[Part, ...] = ()
    answers_business: bool = False  # carries a context pointing at one of the business's messages


def make_customers(rng: random.Random, count: int) -> tuple[Customer, ...]:
    """Two Brazilians for every American; the first customer also writes from the old form."""
    out: list[Customer] = []
    seen: set[str] = set()
    taken = {"pt": 0, "en": 0}
    while len(out) < count:
        lang = "en" if len(out) % 3 == 1 else "pt"
        pool = _BR_NAMES if lang == "pt" else _US_NAMES
        k = taken[lang]
        name = pool[k % len(pool)] + (f" {k // len(pool) + 1}" if k >= len(pool) else "")
        old: str | None = None
        if lang == "pt":
            area = rng.choice(_BR_AREAS)
            subscriber = rng.choice("6789") + "".join(rng.choices("0123456789", k=7))
            wa_id = f"55{area}9{subscriber}"
            old = f"55{area}{subscriber}" if not out else None
        else:
            wa_id = f"1{rng.choice(_US_AREAS)}55501{rng.randrange(100):02d}"  # fictional 555-01xx
        if wa_id in seen:
            continue
        seen.add(wa_id)
        taken[lang] += 1
        out.append(Customer(name, wa_id, lang, old))
    return tuple(out)


def opener(lang: str, rng: random.Random) -> str:
    return rng.choice(_OPENERS[lang]).format(n=rng.randrange(1000, 9999))


def thanks(lang: str) -> str:
    return _THANKS[lang]


def say(shape: str, lang: str, rng: random.Random) -> Said:
    """What a customer writing in `lang` sends as a message of `shape` (one of SHAPES)."""
    pt = lang == "pt"

    def media(mime: str, **extra: object) -> Part:
        return {"mime_type": mime, "sha256": media_sha256(rng), "id": media_id(rng), **extra}

    match shape:
        case "image":
            caption = "Foto da caixa amassada" if pt else "Photo of the damaged box"
            return Said("image", media("image/jpeg", caption=caption))
        case "audio":
            return Said("audio", media("audio/mpeg", voice=False))
        case "voice note":
            return Said("audio", media("audio/ogg; codecs=opus", voice=True))
        case "video":
            caption = "O produto fazendo barulho" if pt else "The noise it makes"
            return Said("video", media("video/mp4", caption=caption))
        case "document":
            filename = "nota-fiscal-0325.pdf" if pt else "invoice-0325.pdf"
            return Said("document", media("application/pdf", filename=filename))
        case "sticker":
            return Said("sticker", media("image/webp", animated=False))
        case "location":
            return Said("location", dict(_LOCATIONS[lang]))
        case "contacts card":
            card = {
                "name": {"formatted_name": "Maria Souza", "first_name": "Maria"},
                "phones": [{"phone": "+55 11 91234-5678", "type": "CELL"}],
            }
            return Said("contacts", [card])
        case "button reply" | "list reply":
            kind = "button_reply" if shape == "button reply" else "list_reply"
            titles = {"button_reply": ("Sim, recebi", "Yes, got it"),
                      "list_reply": ("Entrega expressa", "Express shipping")}  # fmt: skip
            title = titles[kind][0 if pt else 1]
            reply = {"type": kind, kind: {"id": kind.replace("_reply", "_1"), "title": title}}
            return Said("interactive", reply, answers_business=True)
        case "template button":
            text = "Parar promoções" if pt else "Stop promotions"
            button = {"payload": "STOP_PROMOTIONS", "text": text}
            return Said("button", button, answers_business=True)
        case "click-to-ad referral":
            referral: Part = {
                "source_url": "https://fb.me/2ZulEu42P",
                "source_id": str(rng.randrange(10**17, 10**18)),
                "source_type": "ad",
                "headline": "Frete grátis esta semana" if pt else "Free shipping this week",
                "media_type": "image",
            }
            body = "Vi o anúncio, ainda vale?" if pt else "Saw your ad, is it still on?"
            return Said("text", {"body": body}, referral=referral)
        case "unsupported":
            unknown = error(131051, "Message type unknown", "Message type is not supported.")
            return Said("unsupported", None, errors=(unknown,))
        case _:
            raise ValueError(f"no such shape: {shape}")
