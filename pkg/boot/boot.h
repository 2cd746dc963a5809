/* Assembles and runs a node from its settings: the admin (REST API, the only writer of mocks) or
 * a resolver (serves mocks, follows the database's changes). Both binaries' main() call this, so
 * the two share one set of settings, one wiring and one shutdown order. */
#ifndef MK_BOOT_H
#define MK_BOOT_H

typedef enum mk_boot_role {
    MK_BOOT_ADMIN,
    MK_BOOT_RESOLVER,
} mk_boot_role_t;

/* Parses --config/--help and the environment, runs the node until SIGINT or SIGTERM. Returns the
 * process exit status: 0 after a clean shutdown, 1 on a start failure, 2 on bad configuration. */
int mk_boot_main(mk_boot_role_t role, int argc, char **argv);

#endif
