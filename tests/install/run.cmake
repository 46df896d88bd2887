# Installs the built library into a scratch prefix, then configures, builds and runs a
# tiny outside project that uses find_package(poolbench) and links poolbench::pool.
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${WORK_DIR}/prefix
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/install/consumer -B ${WORK_DIR}/build
                -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the consumer project failed: ${rc}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the consumer project failed: ${rc}")
endif()
execute_process(COMMAND ${WORK_DIR}/build/consumer RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message(STATUS "consumer said: ${out}")
if(rc OR NOT out MATCHES "consumer ok")
  message(FATAL_ERROR "the consumer program failed: ${rc} ${out}")
endif()

# The installed binary finds the shipped scenarios beside it (share/poolbench/scenarios),
# before any source checkout, and runs one.
set(bin ${WORK_DIR}/prefix/bin/poolbench)
execute_process(COMMAND ${bin} scenarios RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc OR NOT out MATCHES "lock-recovery-sqlite" OR NOT out MATCHES "files are in ${WORK_DIR}/prefix/share/poolbench/scenarios")
  message(FATAL_ERROR "the installed 'poolbench scenarios' failed: ${rc}\n${out}\n${err}")
endif()
if(NOT EXISTS ${WORK_DIR}/prefix/share/poolbench/scenarios/README.md)
  message(FATAL_ERROR "scenarios/README.md (the format's reference) is not installed")
endif()
execute_process(COMMAND ${bin} run stress-100 --db null:// --no-progress --set phase.stress.duration=300ms
                        --set phase.stress.threads=4
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc OR NOT out MATCHES "verdict: PASS")
  message(FATAL_ERROR "the installed 'poolbench run stress-100' failed: ${rc}\n${out}\n${err}")
endif()
message(STATUS "installed poolbench ran stress-100")
