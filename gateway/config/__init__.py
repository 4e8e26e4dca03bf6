"""Settings: `config/postdesk.yaml` plus `POSTDESK_*` environment overrides, validated.

Every key in the YAML file can be overridden by an environment variable named
`POSTDESK_<SECTION>__<KEY>` (double underscore for each level of nesting, lists comma-separated),
e.g. `POSTDESK_SMTP__LISTEN=0.0.0.0:25` or `POSTDESK_MAILBOXES=support@a.example,order@a.example`.
A bad value stops start-up with one line that names the key and, where it came from the
environment, the variable.

The package's parts, each importable on its own:

- `schema`: `Config`, the whole tree, and what it derives (mailboxes, signing key, staff);
- `service` and `desk`: the sections — how the daemon runs; how the help desk works;
- `base`: the strict section base and `host:port` values; `secret`: the generated key file;
- `environment`: the `POSTDESK_*` overlay; `loading`: `load_config` and its `ConfigError`.

Callers import the names below from `gateway.config` itself.
"""

from gateway.config.base import Section, parse_hostport
from gateway.config.desk import (
    Agent,
    AgentMailConfig,
    Audience,
    Bucket,
    GuardConfig,
    LifecycleConfig,
    NotifyRule,
    Role,
    RulesConfig,
    SchedulerConfig,
    SlaConfig,
    SlaPlanConfig,
    TicketsConfig,
)
from gateway.config.environment import ENV_PREFIX
from gateway.config.loading import DEFAULT_CONFIG, ConfigError, load_config
from gateway.config.schema import DEFAULT_MAILBOX_NAMES, Config
from gateway.config.service import (
    AttachmentsConfig,
    DatabaseConfig,
    ImapAccount,
    ImapConfig,
    LimitsConfig,
    LoggingConfig,
    MetricsConfig,
    OutboxConfig,
    ProcessorConfig,
    RelayConfig,
    SmtpConfig,
    WebConfig,
)

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_MAILBOX_NAMES",
    "ENV_PREFIX",
    "Agent",
    "AgentMailConfig",
    "AttachmentsConfig",
    "Audience",
    "Bucket",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "GuardConfig",
    "ImapAccount",
    "ImapConfig",
    "LifecycleConfig",
    "LimitsConfig",
    "LoggingConfig",
    "MetricsConfig",
    "NotifyRule",
    "OutboxConfig",
    "ProcessorConfig",
    "RelayConfig",
    "Role",
    "RulesConfig",
    "SchedulerConfig",
    "Section",
    "SlaConfig",
    "SlaPlanConfig",
    "SmtpConfig",
    "TicketsConfig",
    "WebConfig",
    "load_config",
    "parse_hostport",
]
