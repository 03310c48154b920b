/* cli.h — scoutd's operator subcommands, which work on a data directory without a token
 * (for an operator locked out of the API): `scoutd token create|list|revoke`, and backups of a
 * whole store: `scoutd backup` / `scoutd restore`. */
#ifndef SCOUT_CLI_H
#define SCOUT_CLI_H

/* argv[0] is "token"; returns the process exit status. */
int cli_token(int argc, char **argv);

/* argv[0] is "backup" or "restore"; returns the process exit status. */
int cli_backup(int argc, char **argv);

#endif
