/* tetherd: the Linux side of tether.  Everything but main() lives in the
 * modules (app.c wires them), so that all of it links into tests. */
#include "app.h"

int main(int argc, char **argv)
{
    return app_main(argc, argv);
}
