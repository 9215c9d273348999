/** The --help text of `dockfleet agent install|uninstall` and `dockfleet hub install|uninstall`. */

export const AGENT_INSTALL_USAGE = `dockfleet agent install --hub URL --code CODE [--state DIR] [--docker URL] [--policy FILE] [--name NAME]
                        [--log-level LEVEL] [--unit-dir DIR]
dockfleet agent uninstall [--unit-dir DIR] [--purge [--state DIR]]

  install enrolls this host first (the code is used once, here; the identity goes into --state,
  default /var/lib/dockfleet-agent), then writes a hardened systemd unit dockfleet-agent.service
  into /etc/systemd/system (--unit-dir: elsewhere, nothing started) and, where systemd runs,
  enables and starts it. The unit carries no enrollment code. uninstall stops, disables and
  removes the unit; the state directory stays unless --purge.`;

export const HUB_INSTALL_USAGE = `dockfleet hub install [--data DIR] [--listen HOST:PORT] [--edge-listen HOST:PORT] [--edge-http HOST:PORT]
                      [--log-level LEVEL] [--unit-dir DIR]
dockfleet hub uninstall [--unit-dir DIR] [--purge [--data DIR]]

  install writes a hardened systemd unit dockfleet-hub.service (data in /var/lib/dockfleet-hub/data
  unless --data) into /etc/systemd/system (--unit-dir: elsewhere, nothing started) and, where
  systemd runs, enables and starts it. uninstall stops, disables and removes the unit; the data
  directory and its master key stay unless --purge.`;
