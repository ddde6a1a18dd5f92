"""Per-channel-connection token buckets in Redis that pace sends below provider quotas."""

from __future__ import annotations

import math
from dataclasses import dataclass

import redis
from redis.commands.core import Script

from engine.events import ChannelConnection, ChannelType

# Default (rate per second, burst) per channel type, from the providers' documented limits.
# A channel's config.rate_per_s / config.burst override them (limits_for).
DEFAULT_LIMITS: dict[ChannelType, tuple[float, int]] = {
    # WhatsApp Cloud API: 80 messages/s per business phone number by default (inbound and
    # outbound together), error 130429 beyond it.
    # developers.facebook.com/documentation/business-messaging/whatsapp/throughput
    ChannelType.WHATSAPP: (80.0, 80),
    # Messenger Send API allows 300 calls/s per Page (10/s with audio/video), but a Page sending
    # more than 40 messages/s is put in high-volume mode: its inbox stops showing and sending new
    # messages. developers.facebook.com/docs/messenger-platform/overview/rate-limiting
    ChannelType.MESSENGER: (40.0, 40),
    # Messenger API for Instagram: same Send API quota per professional account, and the same
    # high-volume mode (same page as above); we keep the Page threshold.
    ChannelType.INSTAGRAM: (40.0, 40),
    # Telegram Bot FAQ: bulk notifications are capped at about 30 messages/s per bot.
    # core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this
    ChannelType.TELEGRAM: (30.0, 30),
    # Twilio: a US/Canada long code sends 1 message segment/s; the rest waits in Twilio's queue
    # and fails after its validity period. twilio.com/docs/api/errors/30001
    ChannelType.SMS: (1.0, 1),
    # E-mail relays publish no common per-second rate (Amazon SES: 1/s in the sandbox, per
    # account beyond it: docs.aws.amazon.com/ses/latest/dg/quotas.html); 5/s is a cautious
    # default for a shared SMTP relay.
    ChannelType.EMAIL: (5.0, 5),
}

# After a provider 429 the bucket runs at half rate for this long once the pause is over, so we
# do not walk straight back into the same limit (additive-increase/multiplicative-decrease, in
# its simplest form). Pass cooling_ms=0 to penalize() to opt out.
DEFAULT_COOLING_MS = 60_000

# State: tokens (float), ts (ms of the last refill), paused_until and slow_until (ms), full_ms
# (the time an empty bucket takes to fill, remembered so penalize() can set a sound expiry).
# A missing key is a full bucket, so a key may expire once it would have refilled completely.
_PRELUDE = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local s = redis.call('HMGET', key, 'tokens', 'ts', 'paused_until', 'slow_until', 'full_ms')
local paused = tonumber(s[3]) or 0
local slow = tonumber(s[4]) or 0
local function expire(ts, full_ms)
  local horizon = math.max(ts, paused, slow, now)
  redis.call('PEXPIRE', key, math.ceil(horizon - now + full_ms) + 1000)
end
-- a bucket in debt (reserved slots) must live until the debt is repaid and it is full again
local function debt_ms(tokens, burst, rate, full_ms)
  return math.max(full_ms, math.ceil((burst - tokens) / rate))
end
"""

_TAKE = (
    _PRELUDE
    + """
local rate = tonumber(ARGV[2]) / 1000
local burst = tonumber(ARGV[3])
local full_ms = math.ceil(burst / rate)
if now < paused then
  return paused - now
end
local tokens = tonumber(s[1]) or burst
local ts = tonumber(s[2]) or now
if now > ts then
  -- refill: half rate for the part of the interval inside the cooling period
  local slow_part = math.max(0, math.min(now, slow) - ts)
  local gained = slow_part * rate / 2 + (now - ts - slow_part) * rate
  tokens = math.min(burst, tokens + gained)
  ts = now
end
tokens = math.min(burst, tokens)
local wait = 0
-- the epsilons absorb float dust from summing refills (0.4 + 0.6 may fall short of 1)
if tokens >= 1 - 1e-9 then
  tokens = math.max(0, tokens - 1)
else
  local need = 1 - tokens
  if now < slow then
    local slow_gain = (slow - now) * rate / 2
    if slow_gain >= need then
      wait = need / (rate / 2)
    else
      wait = (slow - now) + (need - slow_gain) / rate
    end
  else
    wait = need / rate
  end
  wait = math.max(1, math.ceil(wait - 1e-6))
end
redis.call('HSET', key, 'tokens', tokens, 'ts', ts, 'full_ms', full_ms)
expire(ts, debt_ms(tokens, burst, rate, full_ms))
return wait
"""
)

# Take up to n tokens at once. Those not available now are reserved: the bucket goes into debt
# and each gets the time its token will have refilled (so a queue of throttled sends is paced
# one slot apart instead of all retrying at the same instant). A batch re-sent at its slot
# passes reserved=1 and goes through without taking again, unless a penalty pause started
# since (penalize() forgives the debt). Slots beyond horizon_ms are not reserved: those get
# the wait as a hint and ask again later. Returns {granted, hint_ms, slot_1_ms, slot_2_ms...}.
_TAKE_MANY = (
    _PRELUDE
    + """
local rate = tonumber(ARGV[2]) / 1000
local burst = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local reserved = tonumber(ARGV[5])
local horizon = tonumber(ARGV[6])
local full_ms = math.ceil(burst / rate)
if reserved == 1 and now >= paused then
  return {n, 0}
end
local tokens = tonumber(s[1]) or burst
local ts = tonumber(s[2]) or now
if now > ts then
  local slow_part = math.max(0, math.min(now, slow) - ts)
  local gained = slow_part * rate / 2 + (now - ts - slow_part) * rate
  tokens = math.min(burst, tokens + gained)
  ts = now
end
tokens = math.min(burst, tokens)
local function gain_ms(need, from)
  if need <= 0 then
    return 0
  end
  if from < slow then
    local slow_gain = (slow - from) * rate / 2
    if slow_gain >= need then
      return need / (rate / 2)
    end
    return (slow - from) + (need - slow_gain) / rate
  end
  return need / rate
end
local out = {0, 0}
for i = 1, n do
  tokens = tokens - 1
  if now >= paused and tokens >= -1e-9 then
    tokens = math.max(0, tokens)
    out[1] = out[1] + 1
  else
    local from = math.max(now, ts)
    local wait = math.max(1, math.ceil((from - now) + gain_ms(-tokens, from) - 1e-6))
    if wait > horizon then
      tokens = tokens + 1
      out[2] = wait
      break
    end
    out[#out + 1] = wait
  end
end
redis.call('HSET', key, 'tokens', tokens, 'ts', ts, 'full_ms', full_ms)
expire(ts, debt_ms(tokens, burst, rate, full_ms))
return out
"""
)

_PENALIZE = (
    _PRELUDE
    + """
local pause_ms = tonumber(ARGV[2])
local cooling_ms = tonumber(ARGV[3])
local full_ms = tonumber(s[5]) or 0
paused = math.max(paused, now + pause_ms)
slow = math.max(slow, paused + cooling_ms)
-- one token waits at the end of the pause, so the send that was told to wait goes through
redis.call('HSET', key, 'tokens', 1, 'ts', paused, 'paused_until', paused, 'slow_until', slow)
expire(paused, full_ms)
return paused - now
"""
)


# How far ahead take_many() reserves slots; past it a send is told to ask again later.
RESERVE_HORIZON_MS = 60_000


@dataclass(frozen=True)
class Taken:
    """take_many()'s answer: `granted` tokens now; for the next sends, in order, reserved
    slots (ms from now); the `unreserved` rest should ask again in `hint_ms` or later."""

    granted: int
    slots_ms: tuple[int, ...]
    unreserved: int
    hint_ms: int


class TokenBucket:
    """Token buckets under one key prefix; every operation is one atomic Lua script.

    Time is Redis server time, so workers with skewed clocks share one notion of "now".
    """

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._take = client.register_script(_TAKE)
        self._take_many = client.register_script(_TAKE_MANY)
        self._penalize = client.register_script(_PENALIZE)

    def key(self, key: str) -> str:
        """The Redis key of bucket `key`."""
        return f"{self._prefix}:ratelimit:{key}"

    def take(self, key: str, *, rate_per_s: float, burst: int, now_ms: int | None = None) -> int:
        """Take one token: 0 when taken, else the milliseconds until one will be available.

        While a penalty pause runs the answer is what is left of the pause. `now_ms` replaces
        Redis server time (tests).
        """
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        return self._run(self._take, key, _now_arg(now_ms), float(rate_per_s), burst)

    def take_many(
        self,
        key: str,
        n: int,
        *,
        rate_per_s: float,
        burst: int,
        reserved: bool = False,
        horizon_ms: int = RESERVE_HORIZON_MS,
        now_ms: int | None = None,
    ) -> Taken:
        """Take `n` tokens in one call: those available now are granted; for the others a
        slot is reserved (one token interval apart) up to `horizon_ms` ahead, so a backlog
        drains at the bucket's rate instead of retrying all at once.

        `reserved=True` is for sends re-offered at their reserved slot: granted without taking
        again, unless a penalty pause began since (then they queue for new slots).
        """
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        if n < 1:
            return Taken(granted=0, slots_ms=(), unreserved=0, hint_ms=0)
        answer = self._take_many(
            keys=[self.key(key)],
            args=[_now_arg(now_ms), float(rate_per_s), burst, n, int(reserved), horizon_ms],
        )
        granted, hint_ms, *slots = (int(v) for v in answer)
        return Taken(
            granted=granted,
            slots_ms=tuple(slots),
            unreserved=n - granted - len(slots),
            hint_ms=hint_ms,
        )

    def penalize(
        self,
        key: str,
        *,
        pause_ms: int,
        cooling_ms: int = DEFAULT_COOLING_MS,
        now_ms: int | None = None,
    ) -> int:
        """A provider said 429: hand out no token for `pause_ms`, then run at half rate for
        `cooling_ms`. Overlapping penalties extend, never shorten, each other.

        Returns the milliseconds until the pause ends.
        """
        if pause_ms < 0 or cooling_ms < 0:
            raise ValueError("pause_ms and cooling_ms must not be negative")
        return self._run(self._penalize, key, _now_arg(now_ms), pause_ms, cooling_ms)

    def _run(self, script: Script, key: str, *args: float) -> int:
        return max(0, int(script(keys=[self.key(key)], args=list(args))))


def _now_arg(now_ms: int | None) -> int:
    # -1 asks the script for Redis server time.
    return -1 if now_ms is None else now_ms


def limits_for(channel: ChannelConnection) -> tuple[float, int]:
    """(rate per second, burst) for this channel: its config's override, else the default.

    A rate override without a burst gets a burst of about one second's worth of tokens.
    """
    default_rate, default_burst = DEFAULT_LIMITS[channel.type]
    rate = channel.config.rate_per_s
    burst = channel.config.burst
    if rate is None:
        return default_rate, burst if burst is not None else default_burst
    return rate, burst if burst is not None else max(1, math.ceil(rate))


def channel_bucket_key(channel: ChannelConnection) -> str:
    """The bucket of one channel connection (a WhatsApp number, a Page, a bot, an SMS number)."""
    return f"channel:{channel.id}"
