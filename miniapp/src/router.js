import { createRouter, createWebHashHistory } from 'vue-router'
import { signedIn } from './store'

const routes = [
  { path: '/login', component: () => import('./views/LoginView.vue'), meta: { open: true } },
  { path: '/', component: () => import('./views/HomeView.vue') },
  { path: '/certify/:rid?', component: () => import('./views/CertifyView.vue') },
  { path: '/qr', component: () => import('./views/QrView.vue') },
  { path: '/history', component: () => import('./views/HistoryView.vue') },
  { path: '/helper', component: () => import('./views/HelperView.vue') },
  { path: '/scan', component: () => import('./views/ScanView.vue') },
  { path: '/settings', component: () => import('./views/SettingsView.vue') },
  { path: '/settings/consents', component: () => import('./views/ConsentsView.vue') },
  { path: '/messages', component: () => import('./views/MessagesView.vue') },
  { path: '/report', component: () => import('./views/ReportView.vue') },
  { path: '/report/scan', component: () => import('./views/ReportScanView.vue') },
  { path: '/reports', component: () => import('./views/ReportsView.vue') },
  { path: '/reports/:id(\\d+)', component: () => import('./views/ReportDetailView.vue') },
  { path: '/:rest(.*)*', redirect: '/' },
]

// back (the TopBar's, the browser's or the phone's) returns to where the list was scrolled; forward starts at the top
export const router = createRouter({
  history: createWebHashHistory(),
  routes,
  scrollBehavior: (to, from, saved) => saved || { top: 0 },
})

router.beforeEach((to) => {
  if (!to.meta.open && !signedIn()) return { path: '/login', query: { next: to.fullPath } }
  return true
})
