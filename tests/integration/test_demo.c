/* Runs scripts/demo.sh end to end, with the binaries under test
 * ($CITADEL_BIN, $CITADEL_TOOLS) and a run folder from mkdtemp, and checks
 * the outcome lines that the README promises. The script is found relative
 * to the working directory, which is the source tree under make check. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static char *demo_output; /* owned, freed by the test */
static int demo_status = -1;

/* Runs the demo and stores its output (stdout and stderr) and status. */
static void run_demo(void)
{
    char dir[] = "/tmp/citadel-demo-test-XXXXXX";
    char command[512];

    cr_assert_not_null(getenv("CITADEL_BIN"), "CITADEL_BIN must be set (make check sets it)");
    cr_assert_not_null(getenv("CITADEL_TOOLS"), "CITADEL_TOOLS must be set (make check sets it)");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(command, sizeof(command),
             "DEMO_RUN_DIR=%s/run scripts/demo.sh 2>&1; status=$?; rm -rf %s; exit $status", dir,
             dir);

    FILE *pipe = popen(command, "r");
    cr_assert_not_null(pipe);

    size_t size = 0;
    FILE *out = open_memstream(&demo_output, &size);
    char line[4096];
    while (fgets(line, sizeof(line), pipe) != NULL)
        fputs(line, out);
    fclose(out);
    demo_status = pclose(pipe);
}

/* No Criterion .timeout (see test_workload.c): every wait in scripts/demo.sh
 * is bounded by its own WAIT_SECONDS. */
Test(demo, shows_every_case)
{
    static const char *const expected[] = {
        "[energy] pub hvac.zone1.setpoint: ok\n",
        "[energy] request hvac.zone2.setpoint: reply \"setpoint applied\"\n",
        "[energy] pub hvac.serverroom.setpoint: permissions violation\n",
        "[security] pub door.lobby.unlock: ok\n",
        "[security] sub telemetry.hvac.>: permissions violation\n",
        "[twin] recv telemetry.hvac.zone1.temperature: 22.4\n",
        "[twin] pub hvac.zone1.setpoint: permissions violation\n",
        "[intruder] connect rejected: Authorization Violation\n",
        "[rogue] connect rejected: Authorization Violation\n",
        "[no-cert] connect rejected: connection closed by the server\n",
        "-- citadel-callout stopped\n",
        "-- nats-server stopped\n",
        "allow  [energy]    spiffe://citadel.mesh/agent/energy ",
        "deny   [intruder]  spiffe://citadel.mesh/agent/intruder     no_policy: ",
        "deny   [rogue]     claimed spiffe://citadel.mesh/agent/energy x509svid_invalid: ",
    };

    run_demo();
    cr_assert(WIFEXITED(demo_status) && WEXITSTATUS(demo_status) == 0,
              "scripts/demo.sh failed (status %d):\n%s", demo_status, demo_output);
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
        cr_expect_not_null(strstr(demo_output, expected[i]), "missing line: %s", expected[i]);
    cr_expect_null(strstr(demo_output, "demo: expected"), "some audit events were missing");
    free(demo_output);
}
