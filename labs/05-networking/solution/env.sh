# Sourced by the solution's steps (run with the lab folder as working directory): the prefix of
# this lab instance's Docker names, and this learner's alias of the database.
lab=${LABUP_LAB:-lab5}
inst=${LABUP_INSTANCE:-default}
if [ "$inst" = default ]; then p=$lab; else p=$lab-$inst; fi
alias=${LABUP_PARAM_DB_ALIAS:?run by labup solve or labup test, which set LABUP_PARAM_DB_ALIAS}
