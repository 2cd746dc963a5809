/* mockarty: the admin node (REST API, mock serving, the only writer of mocks). */
#include "boot/boot.h"

int main(int argc, char **argv)
{
    return mk_boot_main(MK_BOOT_ADMIN, argc, argv);
}
