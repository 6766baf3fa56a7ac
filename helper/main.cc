#include "helper/cli.h"

int main(int argc, char** argv) { return ch::run_cli(argc, argv); }
