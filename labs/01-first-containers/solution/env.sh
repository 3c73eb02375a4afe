# Sourced by the solution's steps (run with the lab folder as working directory): the prefix of
# this lab instance's Docker names, this learner's port and greeting, and the labels that let
# `labup down` remove what the steps create (a learner leaves them out).
lab=${LABUP_LAB:-lab1}
inst=${LABUP_INSTANCE:-default}
if [ "$inst" = default ]; then p=$lab; else p=$lab-$inst; fi
web_port=${LABUP_PARAM_WEB_PORT:?run by labup solve or labup test, which set it}
greeting=${LABUP_PARAM_GREETING:?run by labup solve or labup test, which set it}
labels="--label labup.managed=true --label labup.lab=$lab --label labup.instance=$inst"
