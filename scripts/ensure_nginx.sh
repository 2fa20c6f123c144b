#!/usr/bin/env bash
# Make sure Debian's nginx is installed (production mode puts it in front of the Rasa and action-server replicas;
# bot/production.py starts it in the foreground with its own configuration).
exec bash "$(dirname "$0")/ensure_debian_package.sh" /usr/sbin/nginx "production mode" nginx-light
