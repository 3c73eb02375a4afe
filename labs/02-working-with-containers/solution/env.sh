# Sourced by the solution's steps (run with the lab folder as working directory).
lab=${LABUP_LAB:-lab2}
inst=${LABUP_INSTANCE:-default}
if [ "$inst" = default ]; then p=$lab; else p=$lab-$inst; fi
