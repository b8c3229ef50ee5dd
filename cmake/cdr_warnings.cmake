# Per-target warnings and sanitizers: call cdr_target_defaults(<target>) on
# every first-party target. Nothing here touches global flags.
function(cdr_target_defaults target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
    -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
    -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough
    -Wno-missing-field-initializers)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    # GCC 12 at -O2/-O3 reports `"text" + std::string` inside libstdc++ as
    # an overlapping memcpy (GCC bug 105329, fixed in 13): a false positive
    # that would fail the release build under -Werror.
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(CDR_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(CDR_FUZZ)
    # Undefined behaviour aborts (no recovery): a fuzzer reports it as a crash.
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined)
  endif()
  if(CDR_SANITIZE)
    target_compile_options(${target} PRIVATE
      -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()
