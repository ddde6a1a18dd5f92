"""Provider sandbox: a local server speaking each provider's API for the demo and tests."""

from adapters.sandbox.app import create_sandbox_app
from adapters.sandbox.server import Sandbox, run_sandbox
from adapters.sandbox.state import SandboxState

__all__ = ["Sandbox", "SandboxState", "create_sandbox_app", "run_sandbox"]
