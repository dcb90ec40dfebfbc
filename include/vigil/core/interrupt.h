#pragma once
/// Cooperative interruption: SIGINT/SIGTERM set a flag that long work polls, so it can save and exit cleanly.

namespace vigil {

/// Installs SIGINT and SIGTERM handlers that set the flag (a second Ctrl-C exits at once with 130).
void install_interrupt_handlers();
bool interrupt_requested();
/// For tests and for code that wants to stop work itself.
void request_interrupt();
void clear_interrupt();

/// SIGHUP asks a long-running service to reload (vigil serve: the model). Installs the handler.
void install_reload_handler();
/// True once per SIGHUP (or request_reload()) received since the last call.
bool take_reload_request();
void request_reload();

}  // namespace vigil
