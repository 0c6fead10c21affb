# pawledger on node:20-slim: built in one stage, run as the unprivileged `node` user with production dependencies only.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build, and the compiler is a dev dependency (the build stage did it).
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY bin ./bin
COPY migrations ./migrations
COPY --from=build /app/dist ./dist
# The local store and the embedded tiers write under /app/var, the only folder the service user owns.
RUN mkdir -p /app/var && chown node:node /app/var
ENV LEDGER_DATA_DIR=/app/var/blocks \
    LEDGER_DB_DIR=/app/var/db \
    IPFS_EMBEDDED_DIR=/app/var/ipfs
USER node
EXPOSE 3000
CMD ["node", "bin/pawledger.js", "serve"]
