# Writes generated/util/version.h with the current git commit at *build* time (run by the
# kvbits_version target before every build), so result files and `kvbits --version` name the
# commit the binary was built from, not the one CMake was configured at. "-dirty" is appended
# when tracked files differ from that commit. configure_file rewrites the header only when its
# content changes, so an unchanged commit recompiles nothing.
# Inputs: SOURCE_DIR, INPUT (version.h.in), OUTPUT, PROJECT_VERSION.
execute_process(COMMAND git rev-parse --short=12 HEAD
  WORKING_DIRECTORY ${SOURCE_DIR} OUTPUT_VARIABLE KVBITS_GIT_COMMIT
  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT KVBITS_GIT_COMMIT)
  set(KVBITS_GIT_COMMIT "unknown")
else()
  execute_process(COMMAND git diff --quiet HEAD --
    WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE dirty ERROR_QUIET)
  if(dirty EQUAL 1)
    string(APPEND KVBITS_GIT_COMMIT "-dirty")
  endif()
endif()
configure_file(${INPUT} ${OUTPUT} @ONLY)
