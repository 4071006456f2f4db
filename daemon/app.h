/* The one module that knows every other: it reads the configuration,
 * creates the store, rings, alerts, alert command runner and link in that
 * order, wires them together with callbacks, runs the event loop, and
 * tears them down in reverse on SIGTERM or SIGINT (SIGHUP reloads the
 * alert settings, the alert command and the log level).
 *
 * Data flows one way: link -> { ring, store, alert -> notify }. */
#ifndef TETHER_APP_H
#define TETHER_APP_H

/* Runs tetherd; returns the process exit status (0 after a clean stop,
 * 1 when start-up failed, 2 for bad configuration). */
int app_main(int argc, char **argv);

#endif
