// The DALI version this plugin was compiled against: a plugin only works with that exact
// version, so poisonkit.dali compares it with the installed one before loading the plugin.
extern "C" __attribute__((visibility("default"))) const char* poisonkit_dali_built_for() {
  return POISONKIT_DALI_VERSION;
}
