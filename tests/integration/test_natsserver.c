#include <criterion/criterion.h>

#include <nats/nats.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../support/natsserver.h"

Test(natsserver, starts_and_accepts_client)
{
    cc_err err = {0};
    cc_test_nats_server *srv = cc_test_nats_server_run(NULL, &err);
    cr_assert_not_null(srv, "%s", err.message);
    cr_assert_gt(cc_test_nats_server_port(srv), 0);
    cr_assert_eq(strncmp(cc_test_nats_server_url(srv), "nats://127.0.0.1:", 17), 0);

    natsConnection *conn = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&conn, cc_test_nats_server_url(srv)), NATS_OK, "%s",
                 nats_GetLastError(NULL));
    cr_assert_eq(natsConnection_PublishString(conn, "harness.check", "ok"), NATS_OK);
    cr_assert_eq(natsConnection_FlushTimeout(conn, 2000), NATS_OK);
    natsConnection_Destroy(conn);

    cr_assert(cc_test_nats_server_wait_log(srv, "Server is ready", 2000));
    cc_test_nats_server_stop(srv);
}

Test(natsserver, stop_removes_directory)
{
    cc_test_nats_server *srv = cc_test_nats_server_run(NULL, NULL);
    cr_assert_not_null(srv);
    char dir[4096];
    strcpy(dir, cc_test_nats_server_dir(srv));
    char *path = NULL;
    cr_assert_eq(cc_test_nats_server_write_file(srv, "extra.txt", "x", &path, NULL), CC_OK);
    free(path);

    cc_test_nats_server_stop(srv);
    struct stat st;
    cr_assert_neq(stat(dir, &st), 0, "%s still exists", dir);
}

Test(natsserver, bad_config_reports_log)
{
    cc_err err = {0};
    cc_test_nats_server *srv = cc_test_nats_server_run("authorization { no_such_key: 1 ", &err);

    cr_assert_null(srv);
    cr_assert(strstr(err.message, "exited before listening") != NULL, "%s", err.message);
    cr_assert(strstr(err.message, "server log ends") != NULL, "%s", err.message);
}

Test(natsserver, rejects_old_binary)
{
    /* A fake nats-server that reports version 2.9.10, like Debian 12's. */
    char dir[] = "/tmp/citadel-fake-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[4096];
    snprintf(path, sizeof(path), "%s/nats-server", dir);
    FILE *script = fopen(path, "w");
    cr_assert_not_null(script);
    fputs("#!/bin/sh\necho 'nats-server: v2.9.10'\n", script);
    fclose(script);
    chmod(path, 0700);
    setenv("CITADEL_NATS_SERVER", path, 1);

    cc_err err = {0};
    cc_test_nats_server *srv = cc_test_nats_server_run(NULL, &err);
    cr_assert_null(srv);
    cr_assert(strstr(err.message, "version 2.9") != NULL, "%s", err.message);
    cr_assert(strstr(err.message, "2.10 or newer") != NULL, "%s", err.message);
    unlink(path);
    rmdir(dir);
}

Test(natsserver, reload_applies_config)
{
    cc_test_nats_server *srv = cc_test_nats_server_run(NULL, NULL);
    cr_assert_not_null(srv);
    cc_err err = {0};

    cr_assert_eq(cc_test_nats_server_reload(srv, "debug: true", &err), CC_OK, "%s", err.message);
    cr_assert(cc_test_nats_server_wait_log(srv, "Reloaded server configuration", 5000));
    cc_test_nats_server_stop(srv);
}
