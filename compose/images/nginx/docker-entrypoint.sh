#!/bin/sh
# As the official image's 20-envsubst-on-templates.sh: each /etc/nginx/templates/X.template becomes
# /etc/nginx/conf.d/X with only the variables whose names match NGINX_ENVSUBST_FILTER replaced.
set -e
if [ "$1" = nginx ]; then
  filter="${NGINX_ENVSUBST_FILTER:-.}"
  names="$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' | grep -E "$filter" | sed 's/.*/${&}/' | tr '\n' ' ')"
  for template in /etc/nginx/templates/*.template; do
    [ -f "$template" ] || continue
    out="/etc/nginx/conf.d/$(basename "$template" .template)"
    envsubst "$names" < "$template" > "$out"
    echo "$0: rendered $template into $out"
  done
fi
exec "$@"
