/* mockarty-resolver: a read-only node that serves mocks from the shared database. */
#include "boot/boot.h"

int main(int argc, char **argv)
{
    return mk_boot_main(MK_BOOT_RESOLVER, argc, argv);
}
