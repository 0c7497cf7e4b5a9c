// The DALI version this plugin was compiled against, as a marker string that poisonkit.dali
// reads from the file before loading it: a plugin only works with that exact DALI version.
extern "C" __attribute__((used, visibility("default")))
const char poisonkit_dali_built_for[] = "poisonkit-dali-built-for:" POISONKIT_DALI_VERSION;
