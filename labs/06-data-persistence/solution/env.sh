# Sourced by the solution's steps (run with the lab folder as working directory): the prefix of
# this lab instance's Docker names, and the labels that let `labup down` remove what the steps
# create (a learner leaves them out).
lab=${LABUP_LAB:-lab6}
inst=${LABUP_INSTANCE:-default}
if [ "$inst" = default ]; then p=$lab; else p=$lab-$inst; fi
labels="--label labup.managed=true --label labup.lab=$lab --label labup.instance=$inst"
